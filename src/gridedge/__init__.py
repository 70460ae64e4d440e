"""gridedge: a platform for the edge of the electricity distribution grid."""

__version__ = "0.1.0"
