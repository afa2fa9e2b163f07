"""mateval's wrapper of Allegro (``nequip-allegro``): ``allegro_adapter.adapter:AllegroAdapter``.

The package is deliberately not called ``allegro``: that name would shadow nequip-allegro itself.
"""
