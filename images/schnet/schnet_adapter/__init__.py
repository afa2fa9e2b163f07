"""SchNet (schnetpack 2.0.4) adapter package for mateval; the entry point is
``schnet_adapter.adapter:SchNetAdapter``."""
