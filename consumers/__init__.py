"""Stage adapters: one per pipeline stage, turning a batch of deliveries into one outcome each.

detect, landmarks and agegender decode their images and run their own analysis step
(models/analysis.py, shared with the in-process API faces.api); sink writes each result file
(and annotated picture). `registry` builds an adapter by stage name and gives it its route;
reading, retrying and committing are faces.streams' part, not theirs.
"""
