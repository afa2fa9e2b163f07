"""mateval's wrapper of NequIP (``nequip``): ``nequip_adapter.adapter:NequipAdapter``.

The package is deliberately not called ``nequip``: that name would shadow the nequip package itself.
"""
