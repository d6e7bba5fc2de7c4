"""Tests of the training pipeline (`remora train`)."""
