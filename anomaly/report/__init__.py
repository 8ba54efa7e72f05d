"""What a person reads: detection metrics as plain data, PNG plots, the HTML report."""
