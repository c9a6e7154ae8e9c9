"""The suite: one module per feature; shared helpers in tests/helpers/, fakes in tests/fakes/."""
