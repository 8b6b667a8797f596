//! The merchant catalogue: what card purchases and bills look like (names, logos, websites,
//! personal finance categories, payment channels, counterparties, store locations).

use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Online,
    InStore,
    Other,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Online => "online",
            Channel::InStore => "in store",
            Channel::Other => "other",
        }
    }

    /// The deprecated `transaction_type` that matches the channel.
    pub fn transaction_type(self) -> &'static str {
        match self {
            Channel::Online => "digital",
            Channel::InStore => "place",
            Channel::Other => "special",
        }
    }
}

#[derive(Debug)]
pub struct Store {
    pub address: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub postal_code: &'static str,
    pub lat: &'static str,
    pub lon: &'static str,
    pub store_number: Option<&'static str>,
}

/// A payment intermediary that appears as a second counterparty (a marketplace or payment app).
#[derive(Debug)]
pub struct Via {
    pub name: &'static str,
    pub kind: &'static str,
    pub website: &'static str,
    pub slug: &'static str,
}

#[derive(Debug)]
pub struct Merchant {
    /// What the bank statement says on the pending transaction (the `name` before cleanup).
    pub raw: &'static str,
    pub name: &'static str,
    /// Logo file stem on plaid-merchant-logos.plaid.com; None = no logo.
    pub slug: Option<&'static str>,
    pub website: Option<&'static str>,
    pub pfc_detailed: &'static str,
    pub confidence: &'static str,
    pub channel: Channel,
    /// Amount range in cents.
    pub min_cents: i64,
    pub max_cents: i64,
    pub store: Option<Store>,
    pub via: Option<Via>,
    /// Restaurants: the posted amount adds a tip to the authorized one.
    pub tips: bool,
    /// Billed monthly on this day of the month (not picked for random purchases).
    pub monthly_on: Option<u32>,
}

impl Merchant {
    pub fn pfc_primary(&self) -> &'static str {
        pfc_primary(self.pfc_detailed)
    }
}

/// Every personal finance category primary the world uses.
pub const PFC_PRIMARIES: &[&str] = &[
    "BANK_FEES",
    "ENTERTAINMENT",
    "FOOD_AND_DRINK",
    "GENERAL_MERCHANDISE",
    "GENERAL_SERVICES",
    "HOME_IMPROVEMENT",
    "INCOME",
    "LOAN_PAYMENTS",
    "MEDICAL",
    "PERSONAL_CARE",
    "RENT_AND_UTILITIES",
    "TRANSFER_IN",
    "TRANSFER_OUT",
    "TRANSPORTATION",
    "TRAVEL",
];

/// Zelle's logo (the payment app on rent payments).
pub const ZELLE_SLUG: &str = "zelle_1230";

/// The primary category is the longest known prefix of the detailed one.
pub fn pfc_primary(detailed: &'static str) -> &'static str {
    PFC_PRIMARIES
        .iter()
        .filter(|p| detailed.starts_with(*p))
        .max_by_key(|p| p.len())
        .copied()
        .unwrap_or("GENERAL_MERCHANDISE")
}

/// Plaid's icon URL for a category primary (what [`crate::assets::AssetUrls`] emits without a base).
pub fn pfc_icon_url(primary: &str) -> String {
    concat(&["https://plaid-category-icons.plaid.com/PFC_", primary, ".png"])
}

/// A logo on plaid-merchant-logos.plaid.com by file stem (what `AssetUrls` emits without a base).
pub fn logo_url(slug: &str) -> String {
    concat(&["https://plaid-merchant-logos.plaid.com/", slug, ".png"])
}

/// Joins strings into one exactly-sized allocation (cheaper than `format!` per transaction).
fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| s.push_str(p));
    s
}

macro_rules! store {
    ($addr:expr, $city:expr, $region:expr, $zip:expr, $lat:expr, $lon:expr, $num:expr) => {
        Some(Store {
            address: $addr,
            city: $city,
            region: $region,
            postal_code: $zip,
            lat: $lat,
            lon: $lon,
            store_number: $num,
        })
    };
}

const AMAZON: Via = Via { name: "Amazon", kind: "marketplace", website: "amazon.com", slug: "amazon_44" };
const PAYPAL: Via = Via { name: "PayPal", kind: "payment_app", website: "paypal.com", slug: "paypal_58" };
const SQUARE: Via = Via { name: "Square", kind: "payment_terminal", website: "squareup.com", slug: "square_83" };

pub static MERCHANTS: &[Merchant] = &[
    Merchant {
        raw: "STARBUCKS STORE 04231",
        name: "Starbucks",
        slug: Some("starbucks_956"),
        website: Some("starbucks.com"),
        pfc_detailed: "FOOD_AND_DRINK_COFFEE",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 350,
        max_cents: 1450,
        store: store!("1 Market St", "San Francisco", "CA", "94105", "37.7941", "-122.3951", Some("04231")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "SQ *BLUE BOTTLE COFFEE",
        name: "Blue Bottle Coffee",
        slug: Some("blue_bottle_coffee_1102"),
        website: Some("bluebottlecoffee.com"),
        pfc_detailed: "FOOD_AND_DRINK_COFFEE",
        confidence: "HIGH",
        channel: Channel::InStore,
        min_cents: 450,
        max_cents: 1600,
        store: store!("66 Mint St", "San Francisco", "CA", "94103", "37.7823", "-122.4075", None),
        via: Some(SQUARE),
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "MCDONALD'S F3021",
        name: "McDonald's",
        slug: Some("mcdonalds_619"),
        website: Some("mcdonalds.com"),
        pfc_detailed: "FOOD_AND_DRINK_FAST_FOOD",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 520,
        max_cents: 2400,
        store: store!("441 Sutter St", "San Francisco", "CA", "94108", "37.7894", "-122.4078", Some("3021")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "CHIPOTLE 1186",
        name: "Chipotle Mexican Grill",
        slug: Some("chipotle_mexican_grill_374"),
        website: Some("chipotle.com"),
        pfc_detailed: "FOOD_AND_DRINK_FAST_FOOD",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 900,
        max_cents: 3200,
        store: store!("211 Sutter St", "San Francisco", "CA", "94108", "37.7898", "-122.4039", Some("1186")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "TST* NOPA RESTAURANT",
        name: "Nopa",
        slug: None,
        website: Some("nopasf.com"),
        pfc_detailed: "FOOD_AND_DRINK_RESTAURANT",
        confidence: "HIGH",
        channel: Channel::InStore,
        min_cents: 3500,
        max_cents: 14000,
        store: store!("560 Divisadero St", "San Francisco", "CA", "94117", "37.7749", "-122.4376", None),
        via: None,
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "SWEETGREEN FIDI",
        name: "Sweetgreen",
        slug: Some("sweetgreen_1221"),
        website: Some("sweetgreen.com"),
        pfc_detailed: "FOOD_AND_DRINK_RESTAURANT",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1200,
        max_cents: 2600,
        store: store!("171 2nd St", "San Francisco", "CA", "94105", "37.7866", "-122.3985", None),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "DOORDASH*THAI HOUSE",
        name: "DoorDash",
        slug: Some("doordash_1307"),
        website: Some("doordash.com"),
        pfc_detailed: "FOOD_AND_DRINK_RESTAURANT",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 1800,
        max_cents: 6500,
        store: None,
        via: None,
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "SAFEWAY #1490",
        name: "Safeway",
        slug: Some("safeway_753"),
        website: Some("safeway.com"),
        pfc_detailed: "FOOD_AND_DRINK_GROCERIES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1500,
        max_cents: 18000,
        store: store!("2020 Market St", "San Francisco", "CA", "94114", "37.7692", "-122.4272", Some("1490")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "TRADER JOE S #236",
        name: "Trader Joe's",
        slug: Some("trader_joes_960"),
        website: Some("traderjoes.com"),
        pfc_detailed: "FOOD_AND_DRINK_GROCERIES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1200,
        max_cents: 12000,
        store: store!("555 9th St", "San Francisco", "CA", "94103", "37.7706", "-122.4091", Some("236")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "WHOLEFDS MKT 10237",
        name: "Whole Foods Market",
        slug: Some("whole_foods_market_1018"),
        website: Some("wholefoodsmarket.com"),
        pfc_detailed: "FOOD_AND_DRINK_GROCERIES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1800,
        max_cents: 21000,
        store: store!("1765 California St", "San Francisco", "CA", "94109", "37.7904", "-122.4234", Some("10237")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "AMAZON MKTPL*2K4XY81",
        name: "Amazon",
        slug: Some("amazon_44"),
        website: Some("amazon.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 800,
        max_cents: 15000,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "AMZN MKTP ANKER DIRECT",
        name: "Anker",
        slug: Some("anker_2210"),
        website: Some("anker.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_ELECTRONICS",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 1999,
        max_cents: 12999,
        store: None,
        via: Some(AMAZON),
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "TARGET 00027",
        name: "Target",
        slug: Some("target_937"),
        website: Some("target.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_SUPERSTORES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1200,
        max_cents: 16000,
        store: store!("789 Mission St", "San Francisco", "CA", "94103", "37.7845", "-122.4043", Some("27")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "COSTCO WHSE #0144",
        name: "Costco",
        slug: Some("costco_178"),
        website: Some("costco.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_SUPERSTORES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 4500,
        max_cents: 38000,
        store: store!("450 10th St", "San Francisco", "CA", "94103", "37.7703", "-122.4113", Some("144")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "APPLE STORE R075",
        name: "Apple",
        slug: Some("apple_49"),
        website: Some("apple.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_ELECTRONICS",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1900,
        max_cents: 129900,
        store: store!("300 Post St", "San Francisco", "CA", "94108", "37.7887", "-122.4074", Some("R075")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "UNIQLO UNION SQ",
        name: "Uniqlo",
        slug: Some("uniqlo_1510"),
        website: Some("uniqlo.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_CLOTHING_AND_ACCESSORIES",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1990,
        max_cents: 11990,
        store: store!("111 Powell St", "San Francisco", "CA", "94102", "37.7853", "-122.4078", None),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "PAYPAL *ETSY SELLER",
        name: "Etsy",
        slug: Some("etsy_315"),
        website: Some("etsy.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 1200,
        max_cents: 9000,
        store: None,
        via: Some(PAYPAL),
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "GREEN APPLE BOOKS",
        name: "Green Apple Books",
        slug: None,
        website: Some("greenapplebooks.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_BOOKSTORES_AND_NEWSSTANDS",
        confidence: "MEDIUM",
        channel: Channel::InStore,
        min_cents: 900,
        max_cents: 6000,
        store: store!("506 Clement St", "San Francisco", "CA", "94118", "37.7831", "-122.4648", None),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "CHEWY.COM",
        name: "Chewy",
        slug: Some("chewy_1702"),
        website: Some("chewy.com"),
        pfc_detailed: "GENERAL_MERCHANDISE_PET_SUPPLIES",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 2500,
        max_cents: 9000,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "WALGREENS #3087",
        name: "Walgreens",
        slug: Some("walgreens_1000"),
        website: Some("walgreens.com"),
        pfc_detailed: "MEDICAL_PHARMACIES_AND_SUPPLEMENTS",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 600,
        max_cents: 6500,
        store: store!("135 4th St", "San Francisco", "CA", "94103", "37.7840", "-122.4030", Some("3087")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "THE HOME DEPOT #0628",
        name: "The Home Depot",
        slug: Some("the_home_depot_935"),
        website: Some("homedepot.com"),
        pfc_detailed: "HOME_IMPROVEMENT_HARDWARE",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 1500,
        max_cents: 25000,
        store: store!("2 Colby St", "San Francisco", "CA", "94134", "37.7247", "-122.4039", Some("0628")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "UBER *TRIP HELP.UBER.COM",
        name: "Uber",
        slug: Some("uber_1060"),
        website: Some("uber.com"),
        pfc_detailed: "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 900,
        max_cents: 5200,
        store: None,
        via: None,
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "LYFT *RIDE THU 8PM",
        name: "Lyft",
        slug: Some("lyft_1089"),
        website: Some("lyft.com"),
        pfc_detailed: "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 800,
        max_cents: 4800,
        store: None,
        via: None,
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "SHELL OIL 57444132",
        name: "Shell",
        slug: Some("shell_784"),
        website: Some("shell.com"),
        pfc_detailed: "TRANSPORTATION_GAS",
        confidence: "VERY_HIGH",
        channel: Channel::InStore,
        min_cents: 3000,
        max_cents: 8500,
        store: store!("1298 Howard St", "San Francisco", "CA", "94103", "37.7755", "-122.4130", Some("57444132")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "CLIPPER SERVICE",
        name: "Clipper",
        slug: None,
        website: Some("clippercard.com"),
        pfc_detailed: "TRANSPORTATION_PUBLIC_TRANSIT",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 2000,
        max_cents: 5000,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "SFMTA PARKING METER",
        name: "SFMTA",
        slug: None,
        website: Some("sfmta.com"),
        pfc_detailed: "TRANSPORTATION_PARKING",
        confidence: "MEDIUM",
        channel: Channel::InStore,
        min_cents: 200,
        max_cents: 1200,
        store: store!("1 S Van Ness Ave", "San Francisco", "CA", "94103", "37.7752", "-122.4193", None),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "UNITED 0162345678901",
        name: "United Airlines",
        slug: Some("united_airlines_1065"),
        website: Some("united.com"),
        pfc_detailed: "TRAVEL_FLIGHTS",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 12000,
        max_cents: 68000,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "AIRBNB * HMQ2BZ4",
        name: "Airbnb",
        slug: Some("airbnb_36"),
        website: Some("airbnb.com"),
        pfc_detailed: "TRAVEL_LODGING",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 15000,
        max_cents: 90000,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "AMC THEATRES 2211",
        name: "AMC Theatres",
        slug: Some("amc_theatres_1120"),
        website: Some("amctheatres.com"),
        pfc_detailed: "ENTERTAINMENT_TV_AND_MOVIES",
        confidence: "HIGH",
        channel: Channel::InStore,
        min_cents: 1400,
        max_cents: 4500,
        store: store!("1000 Van Ness Ave", "San Francisco", "CA", "94109", "37.7853", "-122.4213", Some("2211")),
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "STEAMGAMES.COM 4259522",
        name: "Steam",
        slug: Some("steam_1802"),
        website: Some("steampowered.com"),
        pfc_detailed: "ENTERTAINMENT_VIDEO_GAMES",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 499,
        max_cents: 6999,
        store: None,
        via: None,
        tips: false,
        monthly_on: None,
    },
    Merchant {
        raw: "SUPERCUTS #8812",
        name: "Supercuts",
        slug: None,
        website: Some("supercuts.com"),
        pfc_detailed: "PERSONAL_CARE_HAIR_AND_BEAUTY",
        confidence: "HIGH",
        channel: Channel::InStore,
        min_cents: 2500,
        max_cents: 6000,
        store: store!("2255 Market St", "San Francisco", "CA", "94114", "37.7652", "-122.4321", Some("8812")),
        via: None,
        tips: true,
        monthly_on: None,
    },
    Merchant {
        raw: "NETFLIX.COM",
        name: "Netflix",
        slug: Some("netflix_619"),
        website: Some("netflix.com"),
        pfc_detailed: "ENTERTAINMENT_TV_AND_MOVIES",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 1549,
        max_cents: 1549,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(5),
    },
    Merchant {
        raw: "SPOTIFY USA",
        name: "Spotify",
        slug: Some("spotify_829"),
        website: Some("spotify.com"),
        pfc_detailed: "ENTERTAINMENT_MUSIC_AND_AUDIO",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 1199,
        max_cents: 1199,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(12),
    },
    Merchant {
        raw: "24 HOUR FITNESS USA",
        name: "24 Hour Fitness",
        slug: Some("24_hour_fitness_3"),
        website: Some("24hourfitness.com"),
        pfc_detailed: "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS",
        confidence: "VERY_HIGH",
        channel: Channel::Other,
        min_cents: 4999,
        max_cents: 4999,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(3),
    },
    Merchant {
        raw: "PGANDE WEB ONLINE",
        name: "PG&E",
        slug: Some("pg_e_701"),
        website: Some("pge.com"),
        pfc_detailed: "RENT_AND_UTILITIES_GAS_AND_ELECTRICITY",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 6000,
        max_cents: 19000,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(16),
    },
    Merchant {
        raw: "COMCAST XFINITY",
        name: "Xfinity",
        slug: Some("xfinity_1075"),
        website: Some("xfinity.com"),
        pfc_detailed: "RENT_AND_UTILITIES_INTERNET_AND_CABLE",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 7999,
        max_cents: 7999,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(9),
    },
    Merchant {
        raw: "VERIZON WRLS P2100",
        name: "Verizon",
        slug: Some("verizon_1080"),
        website: Some("verizon.com"),
        pfc_detailed: "RENT_AND_UTILITIES_TELEPHONE",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 8500,
        max_cents: 8500,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(22),
    },
    Merchant {
        raw: "SF WATER POWER SEWER",
        name: "SFPUC",
        slug: None,
        website: Some("sfpuc.org"),
        pfc_detailed: "RENT_AND_UTILITIES_WATER",
        confidence: "HIGH",
        channel: Channel::Online,
        min_cents: 4000,
        max_cents: 9000,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(26),
    },
    Merchant {
        raw: "GEICO *AUTO",
        name: "GEICO",
        slug: Some("geico_336"),
        website: Some("geico.com"),
        pfc_detailed: "GENERAL_SERVICES_INSURANCE",
        confidence: "VERY_HIGH",
        channel: Channel::Online,
        min_cents: 11200,
        max_cents: 11200,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(14),
    },
    Merchant {
        raw: "NEW YORK TIMES DIGITAL",
        name: "The New York Times",
        slug: Some("the_new_york_times_1133"),
        website: Some("nytimes.com"),
        pfc_detailed: "ENTERTAINMENT_TV_AND_MOVIES",
        confidence: "MEDIUM",
        channel: Channel::Online,
        min_cents: 1700,
        max_cents: 1700,
        store: None,
        via: None,
        tips: false,
        monthly_on: Some(27),
    },
];

/// Indices of merchants that are picked for ad-hoc purchases (not monthly bills).
pub fn purchase_merchants() -> &'static [usize] {
    static PURCHASE: LazyLock<Vec<usize>> = LazyLock::new(|| {
        MERCHANTS.iter().enumerate().filter(|(_, m)| m.monthly_on.is_none()).map(|(i, _)| i).collect()
    });
    &PURCHASE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_consistent() {
        assert!(MERCHANTS.len() >= 40);
        for m in MERCHANTS {
            assert!(m.min_cents > 0 && m.min_cents <= m.max_cents, "{}", m.name);
            assert!(m.pfc_detailed.starts_with(m.pfc_primary()), "{}", m.name);
            assert!(m.channel != Channel::InStore || m.store.is_some(), "{}", m.name);
        }
        assert!(MERCHANTS.iter().any(|m| m.via.is_some()));
    }
}
