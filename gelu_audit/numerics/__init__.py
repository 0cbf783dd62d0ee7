"""The numbers, with no notion of a kernel or a report.

Float formats and exact rounding (``formats``), exact values kept as a binade and a
double-double mantissa (``exact_values``), the ULP error arithmetic (``ulp``), the input sets
(``inputs``), and the formulas an implementation may claim (``formulas``: one ``Formula`` each).
May import: the foundation (``gelu_audit``, ``errors``) only.
"""
