//! Sandbox institutions the simulated world knows.

#[derive(Debug)]
pub struct Institution {
    pub id: &'static str,
    pub name: &'static str,
    /// Some institutions report posting times (`datetime`/`authorized_datetime`), most do not.
    pub provides_datetime: bool,
    /// "Unhealthy Platypus Down": real-time calls fail with INSTITUTION_DOWN.
    pub down: bool,
    /// Adds a crypto account whose amounts carry `unofficial_currency_code`.
    pub has_crypto: bool,
    /// Logs in through the bank's own page (OAuth): Link sends the browser to `/sim/oauth/authorize` and back to
    /// the link token's `redirect_uri`, instead of asking for credentials.
    pub oauth: bool,
}

pub static INSTITUTIONS: &[Institution] = &[
    Institution {
        id: "ins_109508",
        name: "First Platypus Bank",
        provides_datetime: true,
        down: false,
        has_crypto: false,
        oauth: false,
    },
    Institution {
        id: "ins_109509",
        name: "First Gingham Credit Union",
        provides_datetime: false,
        down: false,
        has_crypto: false,
        oauth: false,
    },
    Institution {
        id: "ins_109510",
        name: "Tattersall Federal Credit Union",
        provides_datetime: true,
        down: false,
        has_crypto: false,
        oauth: false,
    },
    Institution {
        id: "ins_109511",
        name: "Tartan Bank",
        provides_datetime: false,
        down: false,
        has_crypto: true,
        oauth: false,
    },
    Institution {
        id: "ins_132361",
        name: "Unhealthy Platypus Down",
        provides_datetime: false,
        down: true,
        has_crypto: false,
        oauth: false,
    },
    // Plaid's sandbox OAuth institution.
    Institution {
        id: "ins_127287",
        name: "Platypus OAuth Bank",
        provides_datetime: true,
        down: false,
        has_crypto: false,
        oauth: true,
    },
];

pub fn find(id: &str) -> Option<&'static Institution> {
    INSTITUTIONS.iter().find(|i| i.id == id)
}
