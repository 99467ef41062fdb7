# Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
