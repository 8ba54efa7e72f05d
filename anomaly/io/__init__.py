"""Files in and out: CSV blocks and their parser, the beat readers, and the writers' file
utilities (atomic writes, locks, hashes). Nothing here imports TensorFlow."""
