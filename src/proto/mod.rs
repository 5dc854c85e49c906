//! Wire codec: frames, nv lists, messages and authentication. Pure code: bytes in, values out.
