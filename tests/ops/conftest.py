# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
"""Fixtures: every ops test runs against both adder convolution backends."""

import pytest

import adder_conv_backends


@pytest.fixture(params=adder_conv_backends.BACKENDS)
def backend_name(request):
    return request.param


@pytest.fixture
def backend(backend_name):
    """The adder conv2d function under test (same signature for both)."""
    return adder_conv_backends.get(backend_name)
