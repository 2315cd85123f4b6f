"""The whole wavepod flywheel as local processes: `./pants run deploy/local:up`."""
