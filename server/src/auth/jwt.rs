//! Access and refresh tokens: JWTs signed with HS256, the one algorithm this
//! server accepts. `iss`, `aud`, `exp` and `sub` are required, and `typ` tells
//! an access token from a refresh token, so neither can stand in for the other.
//!
//! jsonwebtoken's signing is pluggable; the provider here does HMAC-SHA-256
//! only (RustCrypto's `hmac` over the `sha2` automerge already builds), so no
//! other algorithm can ever verify, whatever a token's header claims.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secret::Secret;

/// Who the tokens are issued by and for.
pub const ISSUER: &str = "sqm-field-audit";
/// The audience of every token.
pub const AUDIENCE: &str = "sqm-field-audit/api";

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Presented with every request and on the sync socket.
    Access,
    /// Exchanged once for a new pair.
    Refresh,
}

/// The claims of both kinds of token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Access or refresh.
    pub typ: TokenType,
    /// The login session (refresh token family).
    pub sid: String,
    /// A unique id (refresh tokens are recorded by its hash).
    pub jti: String,
}

/// Why a token was not accepted (the client only ever hears "401").
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, algorithm, claims, expiry or encoding.
    #[error("token rejected: {0}")]
    Invalid(String),
    /// A valid token of the other type.
    #[error("a {0:?} token was presented where another type is required")]
    WrongType(TokenType),
}

type HmacSha256 = Hmac<Sha256>;

struct Hs256(HmacSha256);

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // Constant-time comparison.
        mac.verify_slice(sig).map_err(signature::Error::from_source)
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn hs256(algorithm: &Algorithm, secret: &[u8]) -> jsonwebtoken::errors::Result<Hs256> {
    if *algorithm != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    HmacSha256::new_from_slice(secret)
        .map(Hs256)
        .map_err(|_| ErrorKind::InvalidKeyFormat.into())
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |alg, key| Ok(Box::new(hs256(alg, key.as_bytes())?)),
    verifier_factory: |alg, key| Ok(Box::new(hs256(alg, key.try_get_as_bytes()?)?)),
    key_utils: KeyUtils::new_unimplemented(),
};

/// Signs and checks tokens with the server's key.
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Keys from the signing secret (at least 32 bytes).
    pub fn new(secret: &Secret) -> Keys {
        // Installing twice (tests start many servers in one process) is harmless.
        let _ = PROVIDER.install_default();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Keys {
            encoding: EncodingKey::from_secret(secret.expose()),
            decoding: DecodingKey::from_secret(secret.expose()),
            validation,
        }
    }

    /// Signs claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// Checks a token's signature, algorithm, claims and type.
    pub fn verify(&self, token: &str, want: TokenType) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        if data.claims.typ != want {
            return Err(TokenError::WrongType(data.claims.typ));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(typ: TokenType, exp: u64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "k.iyer".into(),
            exp,
            iat: 0,
            typ,
            sid: "s".into(),
            jti: "j".into(),
        }
    }

    fn far() -> u64 {
        jsonwebtoken::get_current_timestamp() + 600
    }

    #[test]
    fn a_signed_token_verifies_and_carries_its_claims() -> Result<(), TokenError> {
        let keys = Keys::new(&Secret::new(vec![7; 32]));
        let token = keys.sign(&claims(TokenType::Access, far()))?;
        assert_eq!(keys.verify(&token, TokenType::Access)?.sub, "k.iyer");
        Ok(())
    }

    #[test]
    fn another_key_type_or_expiry_is_refused() -> Result<(), TokenError> {
        let keys = Keys::new(&Secret::new(vec![7; 32]));
        let other = Keys::new(&Secret::new(vec![8; 32]));
        let token = other.sign(&claims(TokenType::Access, far()))?;
        assert!(keys.verify(&token, TokenType::Access).is_err());
        let refresh = keys.sign(&claims(TokenType::Refresh, far()))?;
        assert!(matches!(
            keys.verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType(TokenType::Refresh))
        ));
        let expired = keys.sign(&claims(TokenType::Access, 1))?;
        assert!(keys.verify(&expired, TokenType::Access).is_err());
        Ok(())
    }
}
