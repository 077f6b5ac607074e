"""Set up Microsoft 365: the documentation's five Entra ID and Exchange Online steps, each
checked with Validate's own steps, ending in filled-in Manage SMTP settings."""
