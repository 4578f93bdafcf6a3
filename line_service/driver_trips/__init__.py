"""Je passe: drivers announce a trip along a line; riders it will pass are told by SMS."""
