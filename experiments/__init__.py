"""experiments: edge/user/channel nodes, the ``dekag-testbed`` command line, configs, studies, reports."""
