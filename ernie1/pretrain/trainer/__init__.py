"""The paddlenlp-Trainer pretraining path (REFERENCE §14): the Trainer runs the loop, checkpoints and resume; these
modules plug the shared config, data, criterion and checkpoint contract into its hooks, one job each."""
