import json

from ernie1.data.preprocess import TASKS_IN_FLIGHT_PER_WORKER, run_ordered
from ernie1.text.document_encoder import EncodeConfig


def test_pool_reads_input_only_a_bounded_distance_ahead(vocab_path):
    pulled = []

    def batches():
        for i in range(200):
            pulled.append(i)
            yield [(0, i + 1, json.dumps({"text": f"文档{i}"}).encode())]

    results = run_ordered(EncodeConfig(model_name=str(vocab_path)), batches(), workers=2)
    first = next(results)
    assert len(first) == 1 and first[0].num_bytes == len("文档0".encode())
    assert len(pulled) <= 2 * TASKS_IN_FLIGHT_PER_WORKER + 1
    results.close()
