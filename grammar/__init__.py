"""The stratlang grammar, shipped as package data (``stratlang.grammar``)."""
