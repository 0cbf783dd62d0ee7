"""The kernels under audit: what each claims, where it can run, and how it is run safely.

The data model and skip reasons (``model``), devices (``devices``), availability
(``availability``), the guarded runner (``runner``), the sources of implementations
(``builtins``, ``compiled``, ``frameworks``, ``plugins``) and the one module that knows them all
(``registry``). May import: numerics and the foundation; never references (a sibling).
"""
