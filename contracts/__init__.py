"""The contracts between preprocessing, model and serving, in one place.

  layout        the fixed layout of a pair's sample: node sets, edge sets,
                trees and their offsets (`SampleLayout`)
  example_keys  the samples' feature names and tf.Example keys
                (`nodes/<set>.#id`, `context/label_<task>`, ...)
  model_inputs  the names of the models' dense inputs (`<set>_index`,
                `<set>_mask`, `<edge set>_weight`, ...)
  signatures    the exported SavedModel's signatures, their inputs and its
                warm-up file

`beam_pipelines` writes samples by them, `model` reads samples and names its
inputs by them, `serving` exports and serves by them. The modules are pure
Python and import none of those packages (docs/sample-contract.md,
docs/serving-contract.md).
"""
