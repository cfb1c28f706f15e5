"""Electronic business archive for Housing Provident Fund centers (住房公积金业务档案)."""

__version__ = "0.1.0"
