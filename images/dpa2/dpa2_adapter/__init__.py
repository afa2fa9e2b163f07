"""mateval's wrapper of DPA-2 (deepmd-kit, PyTorch backend): ``dpa2_adapter.adapter:Dpa2Adapter``.

deepmd-kit's compiled PyTorch op library is never loaded (see :mod:`dpa2_adapter.pure` and the
README): import :mod:`dpa2_adapter.pure` before anything from ``deepmd.pt``.
"""
