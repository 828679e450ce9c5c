"""Text generation: tokenizers, language models (RNN, GRU, LSTM, GPT) and generation."""
