"""Option files: YAML loading, --force_yml overrides, schema checks against the registries, argparse of the entry
points."""
