"""Room: abuse limits — wrong-code budgets and request rates, pure policies and their gate."""
