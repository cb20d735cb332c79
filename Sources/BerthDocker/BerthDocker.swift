/// Docker Engine API client for Berth nodes.
enum BerthDockerModule {}
