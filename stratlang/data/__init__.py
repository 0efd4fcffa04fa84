"""Binding data to a checked model: frames (pandas, CSV, Parquet) → designs a backend
fits (stratified: features, encoded response, strata; personalized: also covariates).
Every data problem is positioned in the spec and names the column and the rows."""

from .design import Design, bind
from .frames import Binder, read_frame
from .personalized import PersonalizedDesign, bind_personalized
from .strata import Factor, Strata

__all__ = ["Binder", "Design", "Factor", "PersonalizedDesign", "Strata", "bind",
           "bind_personalized", "read_frame"]
