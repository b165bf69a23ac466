"""Numerical core of the survival estimators (arrays in, arrays out; no Study, no pandas).

``km`` (Kaplan–Meier, median, survival at tau, RMST), ``logrank``, ``cox`` (Efron /
Breslow, dfbeta sandwich, cox.zph), ``competing`` (Aalen–Johansen, Gray's test),
``discrete`` (grouped-time hazard GLM with clustered sandwich) and ``randomization``
(statistics for many assignment vectors at once). Checked against R in
tests/test_survival_reference.py.
"""
