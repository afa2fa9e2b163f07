"""mateval's wrapper of MACE (``mace-torch``): ``mace_adapter.adapter:MaceAdapter``.

The package is deliberately not called ``mace``: that name would shadow mace-torch itself.
``mace`` must be imported before ``e3nn`` (see the README), which :mod:`mace_adapter.adapter` does.
"""
