from ernie1.data.indexed_dataset import MMapIndexedDataset


def test_tiny_prefix_is_readable_and_consistent(tiny_prefix):
    dataset = MMapIndexedDataset(tiny_prefix)
    assert len(dataset.doc_idx) == 41
    assert dataset.sizes.sum() == len(dataset.ids)
    assert all(len(dataset[i]) > 0 for i in range(len(dataset)))
