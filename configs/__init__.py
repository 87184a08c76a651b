"""The shipped training presets, installed as the package ``l1lite.configs``: ``l1lite presets`` lists them."""
