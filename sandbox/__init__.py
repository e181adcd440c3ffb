"""The sandbox AWS: a moto server on loopback with a small extension of moto's ECS model so that
rollouts move. Only `make run` and the tests use it; nothing on a production path imports it."""
