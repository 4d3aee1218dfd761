"""Placeholder: the families of this module are being written."""
