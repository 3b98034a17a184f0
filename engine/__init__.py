"""The playbook engine: spec, conductor, runner, worker, storage and audit."""
