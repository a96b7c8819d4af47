"""Embedded models: the digits CNN (numpy weights and forward; torch only for training)."""

from __future__ import annotations

from .digits import (ARCH, DIGITS_GROUPS, DIGITS_TEST_ACCURACY, DIGITS_WEIGHTS, digits_data, digits_forward,
                     digits_pixels, digits_state, evaluate_digits, load_digits_layers)

__all__ = ["ARCH", "DIGITS_GROUPS", "DIGITS_TEST_ACCURACY", "DIGITS_WEIGHTS", "digits_data", "digits_forward",
           "digits_pixels", "digits_state", "evaluate_digits", "load_digits_layers"]
