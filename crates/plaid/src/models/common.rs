//! Enums and helpers shared by several endpoints.

use crate::string_enum::string_enum;

string_enum! {
    /// A Plaid product (spec `Products`).
    pub enum Product {
        Assets => "assets",
        Auth => "auth",
        Balance => "balance",
        BalancePlus => "balance_plus",
        Beacon => "beacon",
        Identity => "identity",
        IdentityMatch => "identity_match",
        Investments => "investments",
        InvestmentsAuth => "investments_auth",
        Liabilities => "liabilities",
        PaymentInitiation => "payment_initiation",
        IdentityVerification => "identity_verification",
        Transactions => "transactions",
        CreditDetails => "credit_details",
        Income => "income",
        IncomeVerification => "income_verification",
        StandingOrders => "standing_orders",
        Transfer => "transfer",
        Employment => "employment",
        RecurringTransactions => "recurring_transactions",
        TransactionsRefresh => "transactions_refresh",
        Signal => "signal",
        Statements => "statements",
        ProcessorPayments => "processor_payments",
        ProcessorIdentity => "processor_identity",
        ProfileAuth => "profile_auth",
        ProfileIdentity => "profile_identity",
        CraBaseReport => "cra_base_report",
        CraIncomeInsights => "cra_income_insights",
        CraPartnerInsights => "cra_partner_insights",
        CraNetworkInsights => "cra_network_insights",
        CraCashflowInsights => "cra_cashflow_insights",
        Layer => "layer",
        PayByBank => "pay_by_bank",
        ProtectLinkedBank => "protect_linked_bank",
    }
}

string_enum! {
    /// An ISO-3166 country code accepted by Link (spec `CountryCode`).
    pub enum CountryCode {
        Us => "US",
        Gb => "GB",
        Es => "ES",
        Nl => "NL",
        Fr => "FR",
        Ie => "IE",
        Ca => "CA",
        De => "DE",
        It => "IT",
        Pl => "PL",
        Dk => "DK",
        No => "NO",
        Se => "SE",
        Ee => "EE",
        Lt => "LT",
        Lv => "LV",
        Pt => "PT",
        Be => "BE",
        At => "AT",
        Fi => "FI",
    }
}

/// Lenient readers for optional timestamps. A malformed optional date in one transaction must
/// not make a whole sync page undecodable; the value is still in the transaction's raw JSON.
pub(crate) mod lenient {
    use chrono::{DateTime, NaiveDate, Utc};
    use serde::{Deserialize, Deserializer};

    pub fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok().map(|dt| dt.with_timezone(&Utc))))
    }

    pub fn date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        Ok(text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
    }
}

/// Plaid's request-side date-time format, `YYYY-MM-DDTHH:mm:ssZ` (no fractional seconds).
pub(crate) mod plaid_datetime {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(value: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(dt) => s.serialize_str(&dt.to_rfc3339_opts(SecondsFormat::Secs, true)),
            None => s.serialize_none(),
        }
    }
}
