//! JWT signature checks on ring, installed as jsonwebtoken's crypto provider: verification only
//! (RS*, PS*, ES256/ES384, EdDSA). HMAC is never offered — a gateway holding only public keys must
//! not let a token pick a symmetric algorithm keyed by one of them — and nothing here signs.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{self as sig, RsaParameters, VerificationAlgorithm};

/// One key, checked with one algorithm.
struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

enum Scheme {
    Rsa(&'static RsaParameters),
    Other(&'static dyn VerificationAlgorithm),
}

fn scheme(alg: Algorithm) -> Option<Scheme> {
    Some(match alg {
        Algorithm::RS256 => Scheme::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Scheme::Rsa(&sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Scheme::Rsa(&sig::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => Scheme::Rsa(&sig::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => Scheme::Rsa(&sig::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => Scheme::Rsa(&sig::RSA_PSS_2048_8192_SHA512),
        Algorithm::ES256 => Scheme::Other(&sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => Scheme::Other(&sig::ECDSA_P384_SHA384_FIXED),
        Algorithm::EdDSA => Scheme::Other(&sig::ED25519),
        // HS* and anything added later: not offered.
        _ => return None,
    })
}

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let ok = match (scheme(self.alg), self.key.kind()) {
            (Some(Scheme::Rsa(p)), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                sig::RsaPublicKeyComponents { n, e }
                    .verify(p, msg, signature)
                    .is_ok()
            }
            (Some(Scheme::Rsa(p)), DecodingKeyKind::SecretOrDer(der)) => {
                sig::UnparsedPublicKey::new(p, der)
                    .verify(msg, signature)
                    .is_ok()
            }
            (Some(Scheme::Other(a)), DecodingKeyKind::SecretOrDer(raw)) => {
                sig::UnparsedPublicKey::new(a, raw)
                    .verify(msg, signature)
                    .is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    // The key's family must be the algorithm's: an RSA key never checks an EC or HMAC signature.
    if scheme(*alg).is_none() || key.family() != alg.family() {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn unsupported<T>() -> Result<T, Error> {
    Err(ErrorKind::InvalidKeyFormat.into())
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: new_verifier,
    // Only needed to sign, to derive public keys from private ones, or for thumbprints: unused.
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| unsupported(),
        rsa_pub_components_from_public_key: |_| unsupported(),
        ec_pub_components_from_private_key: |_, _: Algorithm| unsupported(),
        ed_pub_components_from_private_key: |_, _: &EllipticCurve| unsupported(),
        compute_digest: |_, _: ThumbprintHash| unsupported(),
    },
};

/// Make ring the process's JWT crypto. Idempotent; another provider installed first (none is, in
/// this crate) would be kept.
pub fn install() {
    let _ = PROVIDER.install_default();
}
