//! Turning what a user typed into a token or a block id, with errors that
//! quote only a short prefix of it (a token is kilobytes of base64).

use std::str::FromStr;

use labmesh_crypto::PublicKey;
use labmesh_crypto::Token;
use labmesh_crypto::token::BlockId;

use crate::error::{Error, Result};
use crate::instance::Instance;

/// How much of an argument an error message quotes.
const QUOTED_CHARS: usize = 24;

/// `arg` for an error message: whole if short, else a prefix and its length.
pub fn quote_arg(arg: &str) -> String {
    let arg = arg.trim();
    match arg.char_indices().nth(QUOTED_CHARS) {
        None => format!("{arg:?}"),
        Some((cut, _)) => format!(
            "\"{}…\" ({} characters)",
            &arg[..cut].escape_debug(),
            arg.chars().count()
        ),
    }
}

/// Looks a token up among known ones, or parses it as token text.
pub fn token_from_arg(instance: &Instance, arg: &str) -> Result<Token> {
    if let Some(token) = instance.find_token(arg)? {
        return Ok(token);
    }
    Token::from_text(arg.trim()).map_err(|e| {
        Error::InvalidArgument(format!(
            "{} is neither a known token id nor a token ({e}); tokens start with lmt1_, \
             `labmesh tokens` lists known ones",
            quote_arg(arg)
        ))
    })
}

/// What a revocation names: a block id, and the node that issued the chain
/// it belongs to, when this node knows it.
#[derive(Clone, Debug)]
pub struct RevocationTarget {
    pub id: BlockId,
    /// The root issuer of a token containing the block.
    pub root: Option<PublicKey>,
}

/// The block a revocation names: a known token's id (or prefix), a full
/// 64-hex block id, or a token (its last block).
pub fn block_id_from_arg(instance: &Instance, arg: &str) -> Result<RevocationTarget> {
    let token = match instance.find_token(arg)? {
        Some(token) => Some(token),
        None => Token::from_text(arg.trim()).ok(),
    };
    if let Some(token) = token {
        return Ok(RevocationTarget {
            id: token.id(),
            root: Some(token.root_issuer()),
        });
    }
    match BlockId::from_str(arg.trim()) {
        Ok(id) => Ok(RevocationTarget {
            id,
            root: instance.root_of_block(&id)?,
        }),
        Err(_) => Err(Error::InvalidArgument(format!(
            "{} is not a token id: give a known token's id (or 8+ of its hex digits), \
             a 64-digit block id, or the token itself",
            quote_arg(arg)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_arguments_are_quoted_by_a_prefix() {
        assert_eq!(quote_arg(" abc "), "\"abc\"");
        let long = format!("lmt1_{}", "A".repeat(20_000));
        let quoted = quote_arg(&long);
        assert!(quoted.starts_with("\"lmt1_AAAA"), "{quoted}");
        assert!(quoted.ends_with("…\" (20005 characters)"), "{quoted}");
        assert!(quoted.len() < 60, "{quoted}");
        // Multi-byte characters are cut on a boundary.
        let wide = "é".repeat(40);
        assert!(quote_arg(&wide).contains("(40 characters)"));
    }
}
