"""The contract's names are the documented strings (docs/sample-contract.md)."""

from contracts import example_keys as keys
from contracts import model_inputs as inputs


def test_example_keys_are_tfgnn_feature_names():
    assert keys.node_key("user", keys.SIZE_FEATURE) == "nodes/user.#size"
    assert keys.edge_key("user_item", keys.SOURCE_FEATURE) == "edges/user_item.#source"
    assert keys.context_key("label_click") == "context/label_click"
    assert keys.id_key("item") == "nodes/item.#id"
    assert keys.mask_key("user") == "nodes/user.mask"
    assert keys.weight_key("item_item") == "edges/item_item.weight"
    assert keys.label_feature("click") == "label_click"
    assert keys.label_key("conversion") == "context/label_conversion"
    assert keys.task_of("label_click") == "click"
    assert keys.task_of("weight") is None


def test_model_input_names():
    assert inputs.index_input("user") == "user_index"
    assert inputs.ids_input("item") == "item_ids"
    assert inputs.mask_input("item") == "item_mask"
    assert inputs.weight_input("user_user") == "user_user_weight"
    assert inputs.root_id_input("user") == "user_id"
