import pytest
import torch

from filmkit.vqa import QuestionEncoder


def padded_batch():
    # Three questions of lengths 5, 2 and 7, padded to 9 with <NULL> (0).
    questions = torch.zeros(3, 9, dtype=torch.long)
    for row, length in enumerate((5, 2, 7)):
        questions[row, :length] = torch.randint(1, 20, (length,))
    return questions


@pytest.mark.parametrize("rnn_type,num_layers", [("gru", 1), ("gru", 2), ("lstm", 1), ("lstm", 2)])
def test_packed_encoding_equals_running_over_padding(rnn_type, num_layers):
    encoder = QuestionEncoder(20, 6, 10, rnn_type=rnn_type, num_layers=num_layers).eval()
    questions = padded_batch()
    lengths = QuestionEncoder.lengths(questions)
    # Reference: run the RNN over the whole padded sequence, then read the top layer at each last real token.
    outputs, _ = encoder.rnn(encoder.embedding(questions))
    expected = outputs[torch.arange(3), lengths - 1]
    torch.testing.assert_close(encoder(questions), expected, atol=1e-5, rtol=0)


def test_bidirectional_encoding_ignores_padding():
    encoder = QuestionEncoder(20, 6, 10, bidirectional=True).eval()
    questions = padded_batch()
    batched = encoder(questions)
    assert batched.shape == (3, 20)
    for row, length in enumerate(QuestionEncoder.lengths(questions).tolist()):
        alone = encoder(questions[row : row + 1, :length])
        torch.testing.assert_close(batched[row : row + 1], alone, atol=1e-5, rtol=0)


def test_extra_padding_columns_do_not_change_the_embedding():
    encoder = QuestionEncoder(20, 6, 10).eval()
    questions = padded_batch()
    wider = torch.cat([questions, torch.zeros(3, 30, dtype=torch.long)], dim=1)
    torch.testing.assert_close(encoder(questions), encoder(wider), atol=1e-6, rtol=0)
