"""What the builder command runs: passes over the site that fill the dataset."""
