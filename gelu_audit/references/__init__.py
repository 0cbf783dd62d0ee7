"""Correctly rounded references RN_T(f(x)) for each formula and format.

mpmath with Ziv's strategy (``mpmath_ziv``), the vectorized float64 tier that decides most
points and hands the rest to mpmath (``fast_tier``), and the on-disk tables of the 16-bit
formats (``cache``). May import: numerics and the foundation; never implementations (a sibling).
"""
