"""Streamlit dashboards over the store; start them with ``keelwatch dashboard``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["APP"]

#: The Streamlit script (``streamlit run`` this file).
APP = Path(__file__).resolve().parent / "app.py"
