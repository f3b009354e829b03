"""Postdesk: a help desk whose heart is email intake.

The package is laid out as the pipeline a message travels through; see
docs/architecture.md.  `postdesk.mail` is the pure parser every stage uses.
"""

__version__ = "0.1.0"
