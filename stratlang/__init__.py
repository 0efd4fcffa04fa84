from . import solvers
