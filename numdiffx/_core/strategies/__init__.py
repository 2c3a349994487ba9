"""Step rules that run plans: one-step rules (fixed, relative, auto), the error-bound
rule and the adaptive (Ridders) rule. Each declares the plans it supports; adding a rule
is one new module here plus its export in ``numdiffx.steps``."""
