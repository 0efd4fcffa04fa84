"""Numerical engines for stratlang. Arrays and graphs in, arrays out: nothing in this
package knows about the spec language."""
