"""Files in: submit paths, watch a drop folder, replay stored images."""
