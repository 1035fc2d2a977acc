"""Figures and notebook helpers; reads runs, never trains."""
