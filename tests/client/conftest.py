"""The client's tests run the platform for real: the training tests' storage root and tiny model."""

from tests.training.conftest import _storage_root, tiny_base_model, tiny_base_model_dir  # noqa: F401
